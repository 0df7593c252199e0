"""Batch rendering of NPC dialogue scripts (local processes or Ray)."""
