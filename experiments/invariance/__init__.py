"""Translation invariance under the literature's protocols; see this folder's README."""
