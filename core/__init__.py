"""What every hemiface package shares, with no TensorFlow and no OpenCV: the domain
(labels, the reference models' names, titles and files, the notice), the metrics, the
labelled-folder reader, the one-line error formatter and the fd-level output silencer.

Imports only the standard library and numpy, so `runtime` (which installs on a Raspberry
Pi without TensorFlow) may use it; it imports no other hemiface package.
"""
