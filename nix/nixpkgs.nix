# The pinned nixpkgs (nix/nixpkgs.json), as the function nixpkgs is: import ./nixpkgs.nix { }.
let pin = builtins.fromJSON (builtins.readFile ./nixpkgs.json); in
import (builtins.fetchTarball { inherit (pin) url sha256; name = "nixpkgs-${pin.rev}"; })
