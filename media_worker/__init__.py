"""The PyAV media worker: transcodes uploads to HLS ladders and live RTMP to live HLS.
Built in issue 5; this package is its home."""
