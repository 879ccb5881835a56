# The ndarray reference interpreter (examples/custom-backend): float32 CNNs on the CPU.
backend_config = dict(type='ndarray')
