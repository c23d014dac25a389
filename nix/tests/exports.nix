# The functions each library file exports: { <file> = [ names ]; } (checked to have cases).
let
  nix = import ../.;
  fns = set: builtins.filter (n: builtins.isFunction set.${n}) (builtins.attrNames set);
in
{
  inherit (builtins.mapAttrs (_: fns) { inherit (nix) lib lock fetch interpreter overrides package env sets; }) lib lock fetch interpreter overrides package env sets;
  set = [ "mkSet" ];
}
