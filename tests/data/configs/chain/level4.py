_base_ = './level5.py'
level4 = dict(depth=4, tag='l4')
shared = dict(k4=4)
