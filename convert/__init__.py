"""hemiface.convert: Keras models to verified TensorFlow Lite model sets (needs TensorFlow)."""
