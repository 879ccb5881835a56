level7 = dict(depth=7)
shared = dict(k7=7, keep=True)
backend_config = dict(type='tensorrt', common_config=dict(fp16_mode=False, max_workspace_size=1 << 30))
