"""hemiface.synth: procedural faces with one-sided droop (numpy and OpenCV only)."""
