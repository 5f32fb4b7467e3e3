/* The dlsym entry point. RTLD_NEXT and RTLD_DEFAULT look-ups depend on who calls: glibc
 * takes the caller from its return address. A C wrapper would make every such look-up
 * relative to this library (RTLD_NEXT would skip the wrong objects; RTLD_DEFAULT would miss
 * a caller's local scope). So those two are tail-jumped, return address intact, to the real
 * dlsym, and only look-ups on an explicit handle run the C handler, which may wrap the
 * result. x86-64 only for now. */
#include <dlfcn.h>

#if !defined(__x86_64__)
#error "dlsym entry is written for x86-64"
#endif

#include "preload/driver.h"
#include "preload/resolve.h"

__asm__(".text\n"
	".globl dlsym\n"
	".type dlsym, @function\n"
	".p2align 4\n"
	"dlsym:\n"
	"	cmpq $-1, %rdi\n" /* RTLD_NEXT */
	"	je 1f\n"
	"	testq %rdi, %rdi\n" /* RTLD_DEFAULT */
	"	je 1f\n"
	"	jmp gsa_dlsym_handle\n"
	"1:	movq gsa_real_dlsym_ptr(%rip), %rax\n"
	"	testq %rax, %rax\n"
	"	jz 2f\n"
	"	jmp *%rax\n"
	/* First call: resolve the real dlsym, keeping the arguments and stack alignment. */
	"2:	pushq %rdi\n"
	"	pushq %rsi\n"
	"	subq $8, %rsp\n"
	"	call gsa_resolve_real_dlsym\n"
	"	addq $8, %rsp\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	testq %rax, %rax\n"
	"	jz 3f\n"
	"	jmp *%rax\n"
	"3:	ret\n" /* no dlsym at all: NULL */
	".size dlsym, .-dlsym\n");
