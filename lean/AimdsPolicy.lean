import AimdsPolicy.Model
import AimdsPolicy.Theorems
import AimdsPolicy.Examples
