"""The humanoid rig shared by every stage that poses a body (gesture, render, live, the app): a base package that
stages import downward, never the other way.

`skeleton`: the VRM humanoid bones, rest pose, parents (`Skeleton`, `HUMANOID`); `rotations`: quaternions, 6-D
rotations, Euler conversions; `kinematics`: forward kinematics and the leg IK that plants the feet.
"""
