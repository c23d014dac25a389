# Add to nixpkgs' overlays:
#   pythonSets.<set>                 the sets as the binary cache has them: built with the
#                                    pinned nixpkgs (nix/nixpkgs.json) for this nixpkgs' system
#   pythonSetsFromThisNixpkgs.<set>  built with this nixpkgs' python3XY and stdenv instead (the
#                                    binary cache does not have these: everything builds locally)
# (the sets only: default.nix's `bot` is not a set)
final: prev: {
  pythonSets = builtins.removeAttrs (import ./default.nix { system = final.stdenv.hostPlatform.system; }) [ "bot" ];
  pythonSetsFromThisNixpkgs = builtins.removeAttrs (import ./default.nix { pkgs = final; }) [ "bot" ];
}
