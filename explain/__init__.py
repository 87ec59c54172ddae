"""hemiface.explain: Integrated Gradients for the Keras models (needs TensorFlow)."""
