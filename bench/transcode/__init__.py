"""Transcode benchmark: our worker's pipeline vs the ffmpeg CLI on the same clip and ladder."""
