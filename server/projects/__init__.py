"""Projects: a user's songs with their render settings, MIDI file and thumbnail."""
