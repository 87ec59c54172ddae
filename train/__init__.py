"""hemiface.train: the three reference models, trained on synthetic faces (needs TensorFlow)."""
