# `nixpkgs-python generate` fetches each git source once with this, the same builtin the
# generated default.nix uses, so generating proves the pin works and leaves it in the store.
#
#   nix-instantiate --eval --json generated-fetch.nix --argstr url URL --argstr rev REV
#
# -> the store path of the checkout (a string).
{ url, rev }:
(builtins.fetchGit { inherit url rev; allRefs = true; }).outPath
