# Add to nixpkgs' overlays:
#   pythonSets.<set>                 the sets as the binary cache has them: built with the
#                                    pinned nixpkgs (nix/nixpkgs.json) for this nixpkgs' system
#   pythonSetsFromThisNixpkgs.<set>  built with this nixpkgs' python3XY and stdenv instead (the
#                                    binary cache does not have these: everything builds locally)
final: prev: {
  pythonSets = import ./default.nix { system = final.stdenv.hostPlatform.system; };
  pythonSetsFromThisNixpkgs = import ./default.nix { pkgs = final; };
}
