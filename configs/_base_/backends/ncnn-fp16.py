# ncnn with fp16 weights, storage and arithmetic (MMDeploy sets precision='FP16' over ncnn.py in
# its *_ncnn-fp16_* configs). Outputs stay float32; expect differences around 1e-2 relative to
# float32 (docs/backends/ncnn.md has the figures measured).
backend_config = dict(type='ncnn', precision='FP16', use_vulkan=False)
