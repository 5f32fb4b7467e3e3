/* The selection kernels' fatbin, embedded at build time (Makefile: GSA_FATBIN). */
	.section .rodata
	.balign 64
	.globl gsa_fatbin_start
	.hidden gsa_fatbin_start
gsa_fatbin_start:
#ifdef GSA_FATBIN
	.incbin GSA_FATBIN
#endif
	.globl gsa_fatbin_end
	.hidden gsa_fatbin_end
gsa_fatbin_end:
	.byte 0
	.section .note.GNU-stack,"",@progbits
