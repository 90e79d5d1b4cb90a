"""Zhang et al. 2017 on MNIST and Fashion-MNIST: how long a CNN takes to fit random labels."""
