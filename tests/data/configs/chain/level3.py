_base_ = './level4.py'
level3 = dict(depth=3, tag='l3')
shared = dict(k3=3)
