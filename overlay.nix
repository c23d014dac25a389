# Add to nixpkgs' overlays:
#   pythonSets.<set>                 the sets as the binary cache has them: built with the
#                                    pinned nixpkgs (nix/nixpkgs.json) for this nixpkgs' system
#   pythonSetsFromThisNixpkgs.<set>  built with this nixpkgs' python3XY and stdenv instead (the
#                                    binary cache does not have these: everything builds locally)
# (the sets only: default.nix's `bot` is not a set).  Neither is recurseForDerivations: in
# your nixpkgs, nix-env -qa and nix search do not evaluate every set (pythonSets would import
# a second nixpkgs, the pin); wrap one in recurseIntoAttrs to have them listed.
final: prev:
let
  sets = args: (import ./nix/lib.nix).setsOf (import ./default.nix args);
in
{
  pythonSets = sets { system = final.stdenv.hostPlatform.system; };
  pythonSetsFromThisNixpkgs = sets { pkgs = final; };
}
