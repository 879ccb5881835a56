# Every literal form deploy configs use.
_base_ = ['./base_onnx.py', './base_ort.py']
ints = [0, 7, -3, 1_000_000, 0x1F, 0o17, 0b1010, 1 << 30, 2 * 1024, 7 // 2, -7 // 2, 7 % 3, -7 % 3, 2 ** 10, (1 + 2) * 3]
floats = [1.5, -0.25, 1e-5, 2.5E3, .5, 3., 1 / 4, 2 * 0.5]
strings = ['single', "double", '''triple
line''', """tri "double" """, 'esc\t\n\\\'', "uni\u00e9\x41", r'raw\d+', 'implicit' ' concat' "enation"]
flags = (True, False, None)
single = (1,)
empty = dict(a=[], b=(), c={}, d=dict())
n = 4
outputs = [f'output_{i}' for i in range(n)]
ranged = [f'x{i}.y' for i in range(2, 8, 2)]
joined = ['a', 'b'] + ['c'] + outputs
nested = dict({'inner': 1, 'k': [1, (2, 3), {'z': None}]}, extra=n * 2,)
onnx_config = dict(
    dynamic_axes={
        'input': {0: 'batch', 2: 'height', 3: 'width'},  # int keys
        'output': {0: 'batch'},
    },
    input_shape=[224, 224],
)
backend_config = dict(
    precision='fp16',
    common_config=dict(min_positive_val=1e-7, max_finite_val=1e4, keep_io_types=False,
                       op_block_list=None),
)
long_line = dict(a=1, \
    b=2)
