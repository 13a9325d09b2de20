"""ukernels.codegen: Jinja2-rendered mmt4d ukernels per shape and ISA.

Not implemented yet: this package is the home of the codegen path (issue
"Codegen path: Jinja2-generated mmt4d ukernels"). Until it lands,
``ukernels.matmul(..., backend="codegen")`` raises NotImplementedError.
"""
AVAILABLE = False
