# The cref plugin backend (examples/c-plugin): float32 MLPs on the CPU.
backend_config = dict(type='cref')
