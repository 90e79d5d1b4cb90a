"""Configs of the memorization study (smoke, and the MNIST / Fashion-MNIST records)."""
