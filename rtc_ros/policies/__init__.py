"""Flow policies: interface, models, YAML policy spec (safetensors), training, chunk generation."""
