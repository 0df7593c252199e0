"""The avatar itself and how it is drawn: the default character, user glTF/VRM avatars, rendering."""
