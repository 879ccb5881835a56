_base_ = './level6.py'
level5 = dict(depth=5, tag='l5')
shared = dict(k5=5)
