"""glTF 2.0 shared by every stage that reads or writes it (render's avatar loader, gesture's animation export):
a base package that stages import downward, never the other way.

`document`: loading .glb/.gltf into pygltflib's document with a fast JSON decoder; `writer`: the buffer/accessor
writer and the atomic .glb save; `nodes`: node transforms.
"""
