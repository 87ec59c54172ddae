"""`hemiface serve`: the live loop's view in a browser, for a headless device.

Standard library only (http.server, threads): nothing to install beside the base profile,
on 64-bit and 32-bit Pi OS alike, and no framework whose defaults need auditing.

- access.py: who may connect (loopback by default; a token on any other address);
- hub.py: the loop's side (newest frame in a slot, JPEG encoder thread, results, recorder);
- server.py: the routes (page, MJPEG stream, Server-Sent Events, snapshot, recording);
- command.py: `hemiface serve`.
"""
