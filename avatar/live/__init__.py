"""Live avatar driving: VMC protocol over OSC/UDP and a WebSocket stream."""
