"""Point-in-time features: the training table, title parsing, the feature catalog."""
