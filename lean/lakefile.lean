import Lake
open Lake DSL

package aimdsPolicy

@[default_target]
lean_lib AimdsPolicy
