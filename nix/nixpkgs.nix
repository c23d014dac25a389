# The pinned nixpkgs (nix/nixpkgs.json, see bot/model/nixpkgs.py for its format), as the function
# nixpkgs is: import ./nixpkgs.nix { system = "aarch64-linux"; }.
let
  pin = builtins.fromJSON (builtins.readFile ./nixpkgs.json);
  need = f: pin.${f} or (throw "nixpkgs-python: nix/nixpkgs.json has no '${f}'");
in
import (builtins.fetchTarball { url = need "url"; sha256 = need "sha256"; name = "nixpkgs-${need "rev"}"; })
