# Add to nixpkgs' overlays: pkgs.pythonSets.<set> (built with that nixpkgs' python3XY).
final: prev: { pythonSets = import ./default.nix { pkgs = final; }; }
