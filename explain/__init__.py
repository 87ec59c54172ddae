"""hemiface.explain: Integrated Gradients for the Keras models (needs TensorFlow).

One method a file: rules (integration rules), baselines, scorer (the explained score
F = p or 1 - p and its batched gradient graph), integrated_gradients, smoothgrad,
sanity (model randomization), deletion (faithfulness), metrics (laterality, mask,
Spearman), figures, and api.explain_image, which runs them all on one image. Import
the submodules; this package imports nothing heavy.
"""
