# ncnn with fp16 storage and arithmetic at run time (MMDeploy sets precision='FP16' over
# ncnn.py in its *_ncnn-fp16_* configs); the .bin keeps float32 weights. Outputs stay float32;
# expect differences up to a few 1e-3 of the output's largest value (docs/backends/ncnn.md).
backend_config = dict(type='ncnn', precision='FP16', use_vulkan=False)
