# The two interpreter sources.  Both give { executable, version, drv, source }.
let
  lib = import ./lib.nix;
in
{
  # pkgs.python312 etc.
  fromNixpkgs = pkgs: version:
    let
      attr = "python${lib.versionTag version}";
      drv = pkgs.${attr} or (throw "nixpkgs-python: this nixpkgs has no '${attr}' for Python ${version}");
    in
    {
      inherit version drv;
      executable = drv.interpreter;
      source = "nixpkgs";
    };

  # An interpreter already on the machine, from { "3.12" = "/abs/python3.12"; }, used impurely
  # (`sandbox = false`).  Written to nix/local.json by `python -m bot.model.interpreters`.
  standalone = interpreters: version:
    let
      executable = interpreters.${version} or (throw
        "nixpkgs-python: no interpreter configured for Python ${version}; run `python -m bot.model.interpreters` to write nix/local.json, or pass pkgs");
    in
    {
      inherit version executable;
      drv = null;
      source = "standalone";
    };
}
