"""CNN anatomy: activations, kernel size / stride / padding / depth, feature maps, linear
collapse and borders; see this folder's README."""
