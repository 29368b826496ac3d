"""Applications on top of the library: the digit-drawing window, training
plots, evaluation pictures, attention maps. Each imports its GUI or plotting
library (Tk, matplotlib) inside the functions that need it, so that
``import numpynets`` never does."""
