// errors.hpp — lode's exceptions as Python's, for both extension modules of `lode`.
#pragma once

#include <pybind11/pybind11.h>

#include <exception>

#include "lode/error.hpp"

namespace lode::python {

/// lode::UsageError raises `usage_error` (lode.UsageError), any other lode::Error raises
/// `lode_error` (lode.LodeError), with lode's message. The objects must live as long as the
/// interpreter (the modules keep them).
inline void translate_errors(PyObject* lode_error, PyObject* usage_error) {
  static PyObject* lode = nullptr;
  static PyObject* usage = nullptr;
  lode = lode_error, usage = usage_error;
  pybind11::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lode::UsageError& e) {
      PyErr_SetString(usage, e.what());
    } catch (const lode::Error& e) {
      PyErr_SetString(lode, e.what());
    }
  });
}

}  // namespace lode::python
