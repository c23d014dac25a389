# The Nix escape hatch of the overrides library, for what overrides/packages/*.toml cannot say.
# An overlay on every set's packages, applied after the data entries and before the set's own
# sets/<name>/overrides.nix and the user's `overrides`:
#
#   self: super: {
#     foo = super.foo.overridePythonAttrs (old: {
#       env = old.env // { FOO_NO_EXTENSIONS = "1"; };
#     });
#   }
#
# Python attributes (see nix/package.nix): pname version artifact dependencies buildRequires
# frontend env patches nativeBuildInputs buildInputs importsCheck doCheck checkCommand
# checkRequires.  Names of set members must be in the lock.
self: super: { }
