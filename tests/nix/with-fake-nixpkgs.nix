# default.nix with the fake nixpkgs as `pkgs`.
{ interpretersFile, ... }@args:
import ../../default.nix (args // { pkgs = import ./fake-nixpkgs { inherit interpretersFile; }; })
