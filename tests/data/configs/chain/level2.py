_base_ = './level3.py'
level2 = dict(depth=2, tag='l2')
shared = dict(k2=2)
