# The pinned nixpkgs (nix/nixpkgs.json, see bot/model/nixpkgs.py for its format), as the function
# nixpkgs is: import ./nixpkgs.nix { system = "aarch64-linux"; }.
#
# `config` and `overlays` default to empty (not nixpkgs' own defaults, which read
# ~/.config/nixpkgs/config.nix, ~/.config/nixpkgs/overlays and NIXPKGS_CONFIG /
# NIXPKGS_ALLOW_* outside pure evaluation): the pin gives the same packages on every machine,
# the ones the binary cache has.  Pass them to change that.
let
  pin = builtins.fromJSON (builtins.readFile ./nixpkgs.json);
  need = f: pin.${f} or (throw "nixpkgs-python: nix/nixpkgs.json has no '${f}'");
  nixpkgs = import (builtins.fetchTarball { url = need "url"; sha256 = need "sha256"; name = "nixpkgs-${need "rev"}"; });
in
args: nixpkgs ({ config = { }; overlays = [ ]; } // args)
