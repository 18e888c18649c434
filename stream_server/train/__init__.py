"""Distillation of the autoregressive voice from a teacher voice: corpus, data set, training."""
