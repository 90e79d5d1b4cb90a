"""What a trained CNN does: invariance, linear collapse, peaks, weights and pictures.

- `invariance`: shifts and the invariance metrics of the literature.
- `two_dots`: the seed notes' two-dots picture of pooling.
- `linear_collapse`, `im2col`: linear convs composed into one; conv as im2col + matmul.
- `peaks`: stride-1 max pooling as peak finding.
- `weight_stats`, `visualize`: weight norms and sparsity; filters and feature maps.

Floor 5: imports the training core and everything below it.
"""
