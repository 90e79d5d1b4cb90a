"""What each regularizer is worth, tuned and converged; see this folder's README."""
