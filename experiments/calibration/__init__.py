"""The statistics' calibration on simulated studies with a known truth; see the README."""
