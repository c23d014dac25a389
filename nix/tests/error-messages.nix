builtins.mapAttrs (_: case: case.message) (import ./errors.nix)
